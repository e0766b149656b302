"""Running combos: plan, environments (install, reuse, space, locks), cases in the harness, cells."""
