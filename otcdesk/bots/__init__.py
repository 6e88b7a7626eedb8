"""otcdesk.bots: channel adapters. Each verifies and normalises a platform event into an `InboundMessage`,
hands it to the desk's inbound pipeline, and sends the `Reply` it is given; nothing else.

- `base.py`             InboundMessage, Reply, the Channel protocol, text normalisation
- `simulator.py`        the local group-chat simulator (demo mode)
- `wechaty_channel.py`  WeChat groups through python-wechaty; `wechaty_compat.py` makes 0.10.7 import on 3.11
"""
