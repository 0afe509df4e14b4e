"""Click command groups, one module per area; resolver/cli.py only assembles them."""
