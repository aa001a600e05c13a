"""synthwright: teacher-LLM synthetic training data, validated against real data.

The core import is light on purpose: heavy components (llama.cpp, torch, embedders) load
on first use and name the `pip install` that provides them when they are missing.
"""

from synthwright.errors import SynthwrightError, UserError

__version__ = "0.1.0"
__all__ = ["SynthwrightError", "UserError", "__version__"]
