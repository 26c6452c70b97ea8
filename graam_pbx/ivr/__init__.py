"""IVR menus: a greeting, digits and where each leads."""
