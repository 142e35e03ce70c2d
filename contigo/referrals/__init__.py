"""Referrals that close the loop (DESIGN.md §3, §6): a person sent from one site to another
Contigo site, in any country, or to an outside facility, with the sending and the receiving side
seeing every change of its state (sent, received, attended, closed; or not arrived, declined,
cancelled), the receiving site getting the person's history, and the counts by corridor."""
