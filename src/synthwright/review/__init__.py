"""The review page: browse any run step or rows file, and label a calibration sample.

`synthwright review RUN_DIR|DATA` serves it on 127.0.0.1 (FastAPI, server-rendered pages,
one small script, no build step). Labels go to the file `synthwright calibrate --human`
reads. Importing this package needs nothing beyond synthwright's core; the app needs the
`review` extra (FastAPI, uvicorn).
"""

REVIEW_EXTRA = "'synthwright[review]'"
