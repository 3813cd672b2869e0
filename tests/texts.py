"""Texts that exercise tokenization edge cases."""

TEXTS = [
    "My name is Sarah Jessica Parker and I work at Google in New York.",
    "Angela Merkel\nParis",
    "Barack Obama was President of the United States; Angela Merkel led Germany.",
    "",
    "   ",
    "\n\n\t ",
    "Apple 😀 Microsoft 👩‍👩‍👧 Amazon",
    "東京都 and 中国 are places; 日本 too.",
    "Cafe\u0301 Ame\u0301lie in Paris, cafés in Berlin.",
    "control\x00chars\x07and\x1bescapes in London",
    "zero\u200bwidth\u200djoiners and\u00a0no-break spaces",
    "NewYork-based Microsoft's CEO (John Smith) said: 'Hugging Face is 100% spaCy!'",
    "U.S.-based reports: Reuters, Monday, January 2024 -- the European Union's market.",
    "ALL CAPS JOHN SMITH WORKS AT GOOGLE",
    "a" * 300,
    "Paris" * 40,
    "The the the. Washington Washington, Seattle; Seattle: London!",
    "x\r\ny\rz New\u2028York\u2029Berlin",
    "tab\tseparated\tJohn\tSmith",
    "Ünïcödé Mädchen Straße über naïve façade",
]
