"""Text classifiers from synthetic data: a task spec (labels with descriptions, the register,
a small real style sample), AttrPrompt-style generation, cleaning, label-consistency
checking, class balance, MiniLM students, and an evaluation on real labelled rows against
the teacher itself, MiniLM zero-shot and real-label students.

Steps (registered when imported): class_prompts, write_examples, clean_text, label_check,
balance_classes, train_classifier, evaluate_classifier, classify_report.
"""
