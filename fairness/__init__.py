"""Fair-lending monitoring: the protected characteristics a lender watches (never model
features), how their values fall into groups, and adverse impact by group with confidence
intervals. Shared by training (the report's fairness section), the worker (windows on the
decision stream), the ledger (outcomes by group) and the console."""
