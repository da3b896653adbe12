"""The gateway's own web pages, for the technician on the home's network."""
