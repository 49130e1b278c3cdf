process.getuid = () => 1000
