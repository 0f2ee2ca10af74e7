"""The HTTP/JSON gateway: the one door people and programs use to reach Canopy's services."""
