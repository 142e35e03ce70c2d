"""What a laptop's users see of sync: Sync now, automatic sync, each record's status, the
changes the central server did not accept, and the clock and staleness banner (field mode)."""
