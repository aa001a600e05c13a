"""Recipes: how rows become model requests, and how answers become rows."""
