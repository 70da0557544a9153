"""placeholder"""
def run_demo(datadir=None, max_seconds=10.0):
    raise NotImplementedError
