"""Pretraining: synthetic structures over many chemistries, labelled by a teacher potential,
an ensemble trained on them, and a versioned checkpoint with its data card
(`discovery pretrain`)."""
