"""Custom operators for the StyleGAN2 family and the ADA augment pipe.

Every op has a plain-PyTorch reference implementation (`impl='ref'`) that supports first
and second derivatives; `impl=None` picks the fastest implementation available for the
tensor's device. See docs/ops.md.
"""
