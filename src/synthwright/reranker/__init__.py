"""The synthetic reranker pipeline: queries from documents, hybrid candidates, ensemble
pairwise judgments on a budget, Thurstone labels, a trained student, and an evaluation on
real queries. Steps live in `reranker.steps`; `synthwright reranker` runs them.

Needs the `reranker` extra (ranking + embed + training): pip install 'synthwright[reranker]'.
"""
