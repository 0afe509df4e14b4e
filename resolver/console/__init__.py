"""The school's web console and block page (issue 18): aiohttp listeners beside the resolver."""
