"""The user directory over sync: users made or changed on central reach the laptops of their
sites, and can unlock a laptop that has never seen their password.

Central never holds a laptop's master key. When central sets a password it derives, with scrypt
over the password and a per-user salt, an X25519 key pair and keeps only the public half
(:mod:`contigo.usersync.keys`). Directory changes carry it to the laptops of the user's sites
(:mod:`contigo.usersync.central`), where an unlocked laptop seals its master key to it as the
user's wrapped copy (:mod:`contigo.usersync.field`). At login the laptop re-derives the private
key from the typed password and opens the copy.
"""
