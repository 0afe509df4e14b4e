"""Transports move bytes between sockets and the Resolver; they hold no DNS logic."""
