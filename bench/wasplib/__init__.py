"""bench/run's code (wasp vs Envoy vs nginx), by concern: common (constants, tools), procs
(processes, /proc, HTTP GETs), configs (nginx, Envoy and wasp configurations, plugin sets), load
(wrk, h2load), cells (the cell workloads and the Bench that starts and measures targets), scale,
memory, startup (the other workloads), analyse (ratios, slopes, targets), render (markdown), cli."""
