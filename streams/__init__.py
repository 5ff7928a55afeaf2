"""gravitas.streams"""
