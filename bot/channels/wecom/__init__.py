"""WeCom (企业微信) self-built app channel, issue #9.

Groundwork only: callback crypto, message parsing, the API client and its settings. The
callback server and the wiring into the assistant come with the channel contract.
"""
