"""Case statistics for managers: counts, workers involved and amounts by dimension and by period."""
