"""The Python executor that sparkernel launches and supervises.

It runs an IPython InteractiveShell and reports everything the shell shows (streams,
display data, results, errors, input requests, replies) to the kernel as length-prefixed
JSON frames on a pipe. The kernel is the only thing that speaks the Jupyter protocol."""

__version__ = "0.1.0"
