"""The method and its forward: pruning settings, architecture families, importance scores
and keep rules, the pruned model and its token layouts, FLOPs accounting, int8 linears,
tokenising, artifacts, precisions and machine facts. Everything serving needs, and the only
part of ``ltp`` the service imports."""
