"""FirmPay: online payments for law firms (pay links, cards, eCheck, autopay)."""
