"""What the board shows, as text: markers and palette, table cells, header lines, big digits.

Rich-level only (``(text, tone)`` cells and segments): no Textual here, so every piece is tested
without starting an app.
"""
