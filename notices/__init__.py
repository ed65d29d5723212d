"""Adverse-action notices: for every final decline, the written notice Regulation B
(12 CFR 1002.9) owes the applicant, with the FCRA §615(a) block when bureau data was
used, as PDF and HTML, stored in the ledger with the date it was produced."""
