"""The vocabulary every stage shares: domain types, outcomes, versions, selectors, errors, paths."""
