module wasp/testplugin

go 1.24
