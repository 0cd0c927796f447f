"""Question to cited answer: follow-up folding, dense and BM25 retrieval fused, sentence
rescoring, the answer sentence and abstention."""
