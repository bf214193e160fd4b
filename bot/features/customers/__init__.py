"""The special-customer register (特殊客户): its forms, search, card and reveal."""
