"""Off-CPU and wall-clock time: pairing switch-outs with switch-ins (`pairing`), the pipeline's finishing stage
that turns them into weighted samples (`stage`), and the off-CPU/wall views of the resulting Profile (`views`).
The capture side (which events to open) is hwprof.collectors.offcpu."""
