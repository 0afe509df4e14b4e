"""Click command groups, one module per area; cli.py only assembles them."""
