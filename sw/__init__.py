"""cssnn.sw"""
