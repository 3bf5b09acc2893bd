"""cssnn.sim"""
