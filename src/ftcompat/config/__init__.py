"""Reading and validating the configuration: matrix.yaml and the case files."""
