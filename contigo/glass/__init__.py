"""Break the glass: time-limited, reasoned, audited access to a person outside one's scope
(DESIGN.md §4), and the visitor access it gives a site's laptops (SYNC.md §2.10)."""
