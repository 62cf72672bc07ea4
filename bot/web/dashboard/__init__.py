"""The staff dashboard: views, sign-in and roles, the data it shows, its strings."""
