"""Lookalike audiences: positive–unlabelled scoring of a population against a seed."""
