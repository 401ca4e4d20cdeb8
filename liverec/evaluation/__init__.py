"""liverec.evaluation: splits, metrics, protocols, peers and reports (see docs/evaluation.md)."""
