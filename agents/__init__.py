"""gravitas.agents"""
