"""From cell files to the grid: merge, render, the page, history and diffs."""
