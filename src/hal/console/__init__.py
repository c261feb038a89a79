"""The admin console (README "Admin console"): server-rendered screens over the admin API's
service functions, for agents whose role is admin."""
