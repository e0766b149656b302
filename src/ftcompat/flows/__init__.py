"""What each command does, as a flow over the one runner; ``flows.tasks`` lists them."""
