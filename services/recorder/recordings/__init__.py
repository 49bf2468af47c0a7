"""Call recordings on the recorder side: assemble a finished call's chunks into its WAV, and
delete recordings past their tenant's retention."""
