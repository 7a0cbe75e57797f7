"""The client's routes behind a pay link (the page, its JSON, card and eCheck payments, the bank
sign-in) and the "remove my stored method" page; one ``Router`` per function's concern."""
