"""Raw-output view for digits (entry point group ``digits.plugins.view``)."""
