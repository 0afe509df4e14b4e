"""ISP subscriber mode: profiles per subscriber line, bound to dynamic addresses by RADIUS."""
