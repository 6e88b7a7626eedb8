"""The desk after the quote: services over the trade store, the market history and the risk book.

- `booking.py`       TradeService: book an approved order (four eyes), second approval, unwinds, holdings
- `confirmation.py`  the trade confirmation (交易确认书) PDF
- `market_data.py`   MarketDataService: the snapshot store with history, the feed adapter interface, the CSV
                     loader, the demo ticker
- `lifecycle.py`     FixingService: closing prices → knock-out, knock-in, coupon, maturity events and notices
- `risk.py`          RiskService: revalue the live book, snapshots, limits, pre-trade checks; the scheduler job
- `margins.py`       MarginPolicy: fair value → the desk's quote
"""
