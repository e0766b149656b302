"""The one runner: a combo's cases run in a prepared environment, with the result cache and resume."""
