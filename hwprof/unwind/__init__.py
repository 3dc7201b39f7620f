"""Completing user stacks without frame pointers: unwind tables (CFI rows per binary) and the vectorised walk
over the stack copies of --call-graph dwarf samples."""
