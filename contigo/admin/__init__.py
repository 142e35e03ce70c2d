"""Administration pages: sites, users and (on the central server) enrolled devices. Admins
manage everything; a supervisor manages the users of their own sites."""
